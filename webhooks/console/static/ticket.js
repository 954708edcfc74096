// The draft page.
// 1. What the operator typed survives a refused action and an expired form (CSRF 400):
//    each form's fields are kept in sessionStorage when it is sent, put back when the
//    page comes back without a success message, and forgotten after a success.
// 2. While the recording is transcribed, the page asks the server for the result and
//    shows it without a reload; fields the operator has not touched take the new values.
(function () {
  "use strict";
  var KEEP_MS = 60 * 60 * 1000;
  var prefix = "ivr-form:" + location.pathname + ":";
  var skip = { csrf_token: true, version: true };

  function kept(form) {
    try { return JSON.parse(sessionStorage.getItem(prefix + form.id) || "null"); } catch (e) { return null; }
  }

  function save(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || skip[el.name]) { return; }
      if (el.type === "checkbox") { values[el.name] = el.checked; }
      else if (el.type === "radio") { if (el.checked) { values[el.name] = el.value; } }
      else { values[el.name] = el.value; }
    });
    sessionStorage.setItem(prefix + form.id, JSON.stringify({ at: Date.now(), values: values }));
  }

  function restore(form, entry) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || skip[el.name] || !(el.name in entry.values)) { return; }
      var v = entry.values[el.name];
      if (el.type === "checkbox") { el.checked = v; }
      else if (el.type === "radio") { el.checked = el.value === v; }
      else { el.value = v; }
    });
    form.classList.add("restored");
  }

  var forms = Array.prototype.filter.call(document.querySelectorAll("main form[id]"), function (f) {
    return f.method.toLowerCase() === "post";
  });
  var succeeded = document.querySelector(".flash.ok") !== null;
  forms.forEach(function (form) {
    var entry = kept(form);
    if (succeeded || (entry && Date.now() - entry.at > KEEP_MS)) {
      sessionStorage.removeItem(prefix + form.id);
    } else if (entry) {
      restore(form, entry);
    }
    form.addEventListener("submit", function () { save(form); });
  });

  var card = document.getElementById("transcript-card");
  if (!card || card.dataset.pending !== "1") { return; }
  var tries = 0;
  function fill(fields) {
    var edit = document.getElementById("edit");
    if (!edit) { return; }
    Object.keys(fields).forEach(function (name) {
      var el = edit.elements[name];
      if (!el) { return; }
      if (el.type === "checkbox") {
        if (el.checked === el.defaultChecked) { el.checked = el.defaultChecked = !!fields[name]; }
      } else if (el.value === el.defaultValue) {
        el.value = el.defaultValue = fields[name];
      }
    });
  }
  function poll() {
    tries += 1;
    fetch(card.dataset.state, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && s.transcription !== "pending") {
          card.innerHTML = s.card;
          card.dataset.pending = "0";
          card.classList.add("fresh");
          Array.prototype.forEach.call(document.querySelectorAll("input[name=version]"), function (el) { el.value = s.version; });
          fill(s.fields);
        } else if (tries < 300) {
          setTimeout(poll, 2000);
        }
      })
      .catch(function () { if (tries < 300) { setTimeout(poll, 5000); } });
  }
  setTimeout(poll, 2000);
})();
