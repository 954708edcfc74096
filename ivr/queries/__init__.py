"""Read-side query objects that several doors (console, API, CLI) share."""
