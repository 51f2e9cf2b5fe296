/* runbooks render: the index's search over runbooks and steps. Plain script, no library, no network: the
   index is the JSON in <script id="search-index">, so it works from file://. #q=words (or ?q=words) searches
   on load. search(index, query) is pure (tested under node). */
"use strict";

function search(index, query, limit) {
  var words = String(query || "").toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return [];
  var every = function (text) {
    text = text.toLowerCase();
    return words.every(function (w) { return text.indexOf(w) !== -1; });
  };
  var found = [];
  index.forEach(function (rb) {
    var about = [rb.t, rb.c, rb.s, rb.g].join(" ");
    var steps = rb.st.filter(function (s) { return every(s[1]); });
    if (steps.length || every(about)) {
      found.push({title: rb.t, url: rb.u, severity: rb.s, titleMatch: every(about),
                  steps: steps.map(function (s) { return {line: s[0], text: s[1], url: rb.u + "#line-" + s[0]}; })});
    }
  });
  found.sort(function (a, b) { return (b.titleMatch - a.titleMatch) || (b.steps.length - a.steps.length); });
  return found.slice(0, limit || 50);
}

if (typeof module !== "undefined") module.exports = {search: search};

if (typeof document !== "undefined") (function () {
  var input = document.getElementById("search");
  var list = document.getElementById("search-results");
  var data = document.getElementById("search-index");
  if (!input || !list || !data) return;
  var index = JSON.parse(data.textContent);

  function link(href, text) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function show(query) {
    var results = search(index, query);
    list.textContent = "";
    if (String(query).trim() && !results.length) {
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = "Nothing matches \u201c" + query + "\u201d.";
      list.appendChild(none);
    }
    results.forEach(function (r) {
      var item = document.createElement("li");
      item.appendChild(link(r.url, r.title));
      var sev = document.createElement("span");
      sev.className = "sev sev-" + r.severity;
      sev.textContent = r.severity;
      item.appendChild(document.createTextNode(" "));
      item.appendChild(sev);
      if (r.steps.length) {
        var steps = document.createElement("ul");
        r.steps.slice(0, 5).forEach(function (s) {
          var li = document.createElement("li");
          li.appendChild(link(s.url, s.text));
          steps.appendChild(li);
        });
        if (r.steps.length > 5) {
          var more = document.createElement("li");
          more.textContent = "and " + (r.steps.length - 5) + " more step(s)";
          steps.appendChild(more);
        }
        item.appendChild(steps);
      }
      list.appendChild(item);
    });
  }

  function fromLocation() {
    var pattern = /(?:^#|[?&])q=([^&]*)/;
    var match = pattern.exec(location.hash) || pattern.exec(location.search);
    return match ? decodeURIComponent(match[1].replace(/\+/g, " ")) : "";
  }

  input.addEventListener("input", function () {
    show(input.value);
    try {
      history.replaceState(null, "", input.value ? "#q=" + encodeURIComponent(input.value) : "#");
    } catch (e) { /* some browsers refuse it under file:// */ }
  });
  window.addEventListener("hashchange", function () { input.value = fromLocation(); show(input.value); });
  input.value = fromLocation() || input.value;
  if (input.value) show(input.value);
})();
