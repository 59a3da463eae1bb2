// Live updates for legato's pages, no framework: a page whose #live element has
// data-live="1" is re-fetched every few seconds and that element swapped in; a
// #logs element with data-stream follows the run's server-sent log events, and an
// #llm-live element the text of the run's streamed model calls.
(function () {
  "use strict";
  var REFRESH_MS = 2000;

  function editing() {
    var el = document.activeElement;
    return el && el.form !== undefined && el.form !== null;
  }

  function refresh() {
    var live = document.getElementById("live");
    if (!live || live.dataset.live !== "1") return;
    if (document.visibilityState !== "visible" || editing()) {
      setTimeout(refresh, REFRESH_MS);
      return;
    }
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("live");
          if (fresh) {
            live.replaceWith(fresh);
            bindLogs();
          }
        }
        setTimeout(refresh, REFRESH_MS);
      })
      .catch(function () { setTimeout(refresh, REFRESH_MS * 3); });
  }

  var source = null;
  function bindLogs() {
    var box = document.getElementById("logs");
    if (!box || !box.dataset.stream || source) return;
    source = new EventSource(box.dataset.stream);
    source.addEventListener("log", function (event) {
      var line = JSON.parse(event.data);
      var target = document.getElementById("logs");
      var div = document.createElement("div");
      div.className = "log lvl-" + line.level;
      if (line.trace_id) {
        div.title = "trace " + line.trace_id + " span " + line.span_id;
        div.dataset.traceId = line.trace_id;
        div.dataset.spanId = line.span_id;
      }
      div.textContent = line.timestamp.slice(11, 23) + " " + line.level + " " + line.message;
      target.appendChild(div);
      target.scrollTop = target.scrollHeight;
    });
    source.addEventListener("end", function () { source.close(); });
    source.onerror = function () { source.close(); };
  }

  // #llm-live with data-stream: the text of the run's streamed model calls as it
  // grows; the box is shown while a call is in flight and hidden once none is.
  function bindModelStreams() {
    var box = document.getElementById("llm-live");
    if (!box || !box.dataset.stream) return;
    var calls = box.querySelector(".llm-live-calls");
    var streams = new EventSource(box.dataset.stream);
    streams.addEventListener("streams", function (event) {
      var texts = JSON.parse(event.data);
      calls.textContent = "";
      texts.forEach(function (call) {
        var div = document.createElement("div");
        div.className = "llm-live-call";
        div.dataset.callKey = call.call_key;
        var key = document.createElement("code");
        key.textContent = call.call_key;
        var text = document.createElement("pre");
        text.textContent = call.text;
        div.appendChild(key);
        div.appendChild(text);
        calls.appendChild(div);
      });
      box.hidden = texts.length === 0;
    });
    streams.addEventListener("end", function () { streams.close(); box.hidden = true; });
    streams.onerror = function () { streams.close(); box.hidden = true; };
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindModelStreams();
    bindLogs();
    setTimeout(refresh, REFRESH_MS);
  });
})();
