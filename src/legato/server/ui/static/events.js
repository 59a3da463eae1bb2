// The Events page's live updates: poll /api/events/stream from the cursor the
// page was rendered at and add each new event on top. Everything shown is set
// as text (events hold user data), never as HTML.
(function () {
  "use strict";
  var POLL_MS = 1000;
  var PAYLOAD_SHOWN = 80;

  function shorten(text) {
    if (text.length <= PAYLOAD_SHOWN) return text;
    var head = Math.floor(PAYLOAD_SHOWN / 2);
    var tail = PAYLOAD_SHOWN - 1 - head;
    return text.slice(0, head) + "\u2026" + text.slice(text.length - tail);
  }

  function cell(text, mono) {
    var td = document.createElement("td");
    if (mono) td.className = "mono";
    td.textContent = text;
    return td;
  }

  function row(event) {
    var tr = document.createElement("tr");
    tr.className = "event";
    tr.dataset.id = event.id;
    tr.appendChild(cell(event.occurred.slice(0, 19).replace("T", " "), true));
    tr.appendChild(cell(event.event, true));
    var resource = cell("", true);
    var id = event.resource["legato.resource.id"];
    var link = document.createElement("a");
    link.href = "?resource=" + encodeURIComponent(id);
    link.textContent = id;
    resource.appendChild(link);
    tr.appendChild(resource);
    var payload = Object.keys(event.payload).length ? JSON.stringify(event.payload) : "{}";
    var details = document.createElement("details");
    var summary = document.createElement("summary");
    var code = document.createElement("code");
    code.textContent = shorten(payload);
    summary.appendChild(code);
    var pre = document.createElement("pre");
    pre.textContent = JSON.stringify({
      id: event.id, resource: event.resource, related: event.related,
      payload: event.payload, follows: event.follows
    }, null, 2);
    details.appendChild(summary);
    details.appendChild(pre);
    var td = document.createElement("td");
    td.appendChild(details);
    tr.appendChild(td);
    return tr;
  }

  function poll(table) {
    var url = "/api/events/stream?after=" + encodeURIComponent(table.dataset.cursor) +
      (table.dataset.query ? "&" + table.dataset.query : "");
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) {
          var body = table.tBodies[0];
          data.events.forEach(function (event) {
            if (body.querySelector('tr[data-id="' + CSS.escape(event.id) + '"]')) return;
            var empty = body.querySelector("tr.empty");
            if (empty) empty.remove();
            body.insertBefore(row(event), body.firstChild);
          });
          table.dataset.cursor = data.cursor;
        }
        setTimeout(function () { poll(table); }, data ? POLL_MS : POLL_MS * 5);
      })
      .catch(function () { setTimeout(function () { poll(table); }, POLL_MS * 5); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("events");
    if (table && table.dataset.cursor) setTimeout(function () { poll(table); }, POLL_MS);
  });
})();
