"""Running the service: roles, HTTP servers, the scheduler lease, readiness, logs, metrics."""
