// The per-example browser: pick a run (task, method, seed), filter rows by tag, search text.
// State lives in the URL fragment (#view=...&filter=...&q=...), so a link reopens a filter.
(function () {
  "use strict";
  var root = document.getElementById("browser");
  if (!root) { return; }
  var views = JSON.parse(document.getElementById("browser-views").textContent);
  var state = { view: views.length ? views[0].id : "", filter: "all", q: "" };

  function readHash() {
    var hash = window.location.hash.replace(/^#/, "");
    hash.split("&").forEach(function (part) {
      var pair = part.split("=");
      if (pair.length === 2 && (pair[0] in state)) { state[pair[0]] = decodeURIComponent(pair[1]); }
    });
    if (!views.some(function (v) { return v.id === state.view; }) && views.length) { state.view = views[0].id; }
  }

  function writeHash() {
    var hash = "view=" + encodeURIComponent(state.view) + "&filter=" + encodeURIComponent(state.filter) +
      "&q=" + encodeURIComponent(state.q);
    if (window.history && window.history.replaceState) { window.history.replaceState(null, "", "#" + hash); }
  }

  function current() {
    for (var i = 0; i < views.length; i++) { if (views[i].id === state.view) { return views[i]; } }
    return null;
  }

  function syncSelects() {
    var view = current();
    ["task", "method", "seed"].forEach(function (key) {
      var select = document.getElementById("pick-" + key);
      if (select && view) { select.value = view[key]; }
    });
  }

  function pick() {
    var wanted = {};
    ["task", "method", "seed"].forEach(function (key) {
      var select = document.getElementById("pick-" + key);
      wanted[key] = select ? select.value : null;
    });
    var match = views.filter(function (v) {
      return ["task", "method", "seed"].every(function (key) { return wanted[key] === null || v[key] === wanted[key]; });
    });
    document.getElementById("no-view").hidden = match.length > 0;
    state.view = match.length ? match[0].id : "";
    apply();
  }

  function apply() {
    var query = state.q.toLowerCase();
    var counts = { all: 0 };
    root.querySelectorAll(".view").forEach(function (section) {
      var active = section.getAttribute("data-view") === state.view;
      section.hidden = !active;
      if (!active) { return; }
      section.querySelectorAll("tr.ex").forEach(function (row) {
        var tags = (row.getAttribute("data-tags") || "").split(" ");
        var found = !query || row.textContent.toLowerCase().indexOf(query) >= 0;
        if (found) {
          counts.all += 1;
          tags.forEach(function (tag) { counts[tag] = (counts[tag] || 0) + 1; });
        }
        row.hidden = !(found && (state.filter === "all" || tags.indexOf(state.filter) >= 0));
      });
    });
    root.querySelectorAll("button[data-filter]").forEach(function (button) {
      var tag = button.getAttribute("data-filter");
      button.setAttribute("aria-pressed", String(tag === state.filter));
      var count = button.querySelector(".count");
      if (count) { count.textContent = String(counts[tag] || 0); }
    });
    var shown = root.querySelectorAll(".view:not([hidden]) tr.ex:not([hidden])").length;
    document.getElementById("shown").textContent = String(shown);
    writeHash();
  }

  root.querySelectorAll("button[data-filter]").forEach(function (button) {
    button.addEventListener("click", function () { state.filter = button.getAttribute("data-filter"); apply(); });
  });
  ["task", "method", "seed"].forEach(function (key) {
    var select = document.getElementById("pick-" + key);
    if (select) { select.addEventListener("change", pick); }
  });
  var search = document.getElementById("search");
  search.addEventListener("input", function () { state.q = search.value; apply(); });

  readHash();
  search.value = state.q;
  syncSelects();
  apply();
  document.body.setAttribute("data-browser", "ready");
})();
