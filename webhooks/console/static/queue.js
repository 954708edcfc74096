// The draft queue, live: new and changed tickets arrive as server-sent events.
// Each event carries the row as the server renders it and whether it still
// matches this page's filters; rows that no longer match leave the table.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table || !window.EventSource) { return; }
  var body = table.tBodies[0];
  var live = document.getElementById("live");
  var empty = document.getElementById("empty");

  function rowFrom(html) {
    var t = document.createElement("tbody");
    t.innerHTML = html.trim();
    return t.firstElementChild;
  }

  function show(data) {
    var old = document.getElementById("t-" + data.id);
    if (!data.matches) {
      if (old) { old.remove(); }
    } else {
      var row = rowFrom(data.html);
      row.classList.add("fresh");
      if (old) {
        old.replaceWith(row);
      } else {
        body.insertBefore(row, body.firstElementChild);
      }
      setTimeout(function () { row.classList.remove("fresh"); }, 4000);
    }
    if (empty) { empty.hidden = body.rows.length > 0; }
  }

  var source = new EventSource(table.dataset.stream);
  source.addEventListener("ticket", function (e) { show(JSON.parse(e.data)); });
  source.addEventListener("open", function () { live.classList.remove("down"); live.dataset.state = "open"; });
  source.addEventListener("error", function () { live.classList.add("down"); live.dataset.state = "reconnecting"; });
})();
