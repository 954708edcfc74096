// The work queue, live: new and changed tickets arrive as server-sent events.
// Each event carries the row as the server renders it and whether it still
// matches this page's filters; rows that no longer match leave the table, and a
// row that does takes its place in the queue's order (urgent, due date, oldest),
// unless it sorts after this page's last row and later pages exist.
(function () {
  "use strict";
  var table = document.getElementById("queue");
  if (!table || !window.EventSource) { return; }
  var body = table.tBodies[0];
  var live = document.getElementById("live");
  var empty = document.getElementById("empty");
  var lastPage = table.dataset.lastPage === "1";

  function rowFrom(html) {
    var t = document.createElement("tbody");
    t.innerHTML = html.trim();
    return t.firstElementChild;
  }

  function place(row) {
    var key = row.dataset.order;
    for (var i = 0; i < body.rows.length; i++) {
      if (body.rows[i].dataset.order > key) {
        body.insertBefore(row, body.rows[i]);
        return true;
      }
    }
    if (lastPage) { body.appendChild(row); return true; }
    return false;
  }

  function show(data) {
    var old = document.getElementById("t-" + data.id);
    if (old) { old.remove(); }
    if (data.matches) {
      var row = rowFrom(data.html);
      row.classList.add("fresh");
      if (place(row)) {
        setTimeout(function () { row.classList.remove("fresh"); }, 4000);
      }
    }
    if (empty) { empty.hidden = body.rows.length > 0; }
  }

  var source = new EventSource(table.dataset.stream);
  source.addEventListener("ticket", function (e) { show(JSON.parse(e.data)); });
  source.addEventListener("open", function () { live.classList.remove("down"); live.dataset.state = "open"; });
  source.addEventListener("error", function () { live.classList.add("down"); live.dataset.state = "reconnecting"; });
})();
