// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  // JSON calls made from pages send the session's CSRF token.
  window.agentry = {
    csrfToken: meta ? meta.getAttribute("content") : "",
    api: function (method, path, body) {
      return fetch(path, {
        method: method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": this.csrfToken },
        body: body === undefined ? undefined : JSON.stringify(body)
      });
    }
  };

  // Ask before submitting forms marked as dangerous.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });

  // Relative times: the same steps as the server (web::ui::filters::relative),
  // kept current; the exact UTC time stays in the title.
  function relative(at, now) {
    var diff = Math.trunc((now - at) / 1000), s = Math.abs(diff), span;
    if (s < 5) { return "just now"; }
    if (s >= 30 * 86400) { return new Date(at).toISOString().slice(0, 10); }
    if (s < 60) { span = s + " s"; }
    else if (s < 3600) { span = Math.floor(s / 60) + " m"; }
    else if (s < 86400) { span = Math.floor(s / 3600) + " h"; }
    else { span = Math.floor(s / 86400) + " d"; }
    return diff >= 0 ? span + " ago" : "in " + span;
  }
  function span(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) { return s + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " m"; }
    if (s < 86400) { return Math.floor(s / 3600) + " h"; }
    return Math.floor(s / 86400) + " d";
  }
  function refreshTimes(root) {
    var now = Date.now();
    (root || document).querySelectorAll("time[datetime][title]").forEach(function (t) {
      var at = Date.parse(t.getAttribute("datetime"));
      if (isNaN(at)) { return; }
      // `data-for`: how long since ("firing for 7 m"); else "7 m ago".
      t.textContent = t.hasAttribute("data-for") ? span(now - at) : relative(at, now);
    });
  }
  setInterval(refreshTimes, 15000);

  // Sortable tables: a click on a heading sorts the rows by that column
  // (numbers as numbers, times by their datetime, the rest as text).
  function cellKey(row, i) {
    var cell = row.cells[i];
    if (!cell) { return ""; }
    if (cell.hasAttribute("data-sort")) { return cell.getAttribute("data-sort"); }
    var t = cell.querySelector("time[datetime]");
    if (t) { return t.getAttribute("datetime"); }
    return cell.textContent.trim();
  }
  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    if (!isNaN(x) && !isNaN(y) && /^-?[\d.]+/.test(a) && /^-?[\d.]+/.test(b)) { return x - y; }
    return a.localeCompare(b, undefined, { sensitivity: "base", numeric: true });
  }
  function makeSortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, i) {
      if (th.hasAttribute("data-nosort") || !th.textContent.trim()) { return; }
      th.setAttribute("aria-sort", "none");
      th.tabIndex = 0;
      function sort() {
        var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
        Array.prototype.forEach.call(heads, function (h) { if (h.hasAttribute("aria-sort")) { h.setAttribute("aria-sort", "none"); } });
        th.setAttribute("aria-sort", dir);
        var body = table.tBodies[0];
        var rows = Array.prototype.filter.call(body.rows, function (r) { return !r.hasAttribute("data-empty"); });
        rows.sort(function (r1, r2) {
          var c = compare(cellKey(r1, i), cellKey(r2, i));
          return dir === "ascending" ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (ev) { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sort(); } });
    });
  }

  // Search boxes filter their table's rows as one types; the form still
  // submits `q` to the server without JavaScript.
  function wireSearch(input) {
    var table = document.querySelector(input.getAttribute("data-filter"));
    var shown = document.querySelector(input.getAttribute("data-shown"));
    if (!table) { return; }
    function apply() {
      var q = input.value.trim().toLowerCase(), n = 0, total = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        if (r.hasAttribute("data-empty")) { return; }
        total += 1;
        var hit = !q || r.textContent.toLowerCase().indexOf(q) !== -1;
        r.hidden = !hit;
        if (hit) { n += 1; }
      });
      if (shown) { shown.textContent = q ? n + " of " + total + " shown" : ""; }
    }
    input.addEventListener("input", apply);
    if (input.value) { apply(); }
  }

  // Live pages: every `data-refresh` seconds the page is fetched again and
  // each `[data-live]` region replaced by its new copy (regions holding the
  // focus are left alone, so nobody loses what they are typing).
  function stale() {
    var u = document.getElementById("updated");
    if (u) { u.setAttribute("data-stale", "true"); }
  }
  function refreshLive() {
    return fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        // Signed out meanwhile: the answer is the login page.
        if (!doc.getElementById("updated")) { stale(); return; }
        document.querySelectorAll("[data-live][id]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (!fresh || old.contains(document.activeElement)) { return; }
          old.replaceWith(fresh);
          fresh.querySelectorAll("table[data-sortable]").forEach(makeSortable);
        });
        refreshTimes();
      })
      .catch(stale);
  }
  window.agentry.refreshLive = refreshLive;
  function live(seconds) {
    setInterval(function () { if (!document.hidden) { refreshLive(); } }, seconds * 1000);
  }

  function init() {
    refreshTimes();
    document.querySelectorAll("table[data-sortable]").forEach(makeSortable);
    document.querySelectorAll("input[data-filter]").forEach(wireSearch);
    // Copy buttons for secrets shown once (hidden without JavaScript,
    // where selecting the text is the way).
    document.querySelectorAll("button[data-copy]").forEach(function (btn) {
      var id = btn.getAttribute("data-copy");
      var src = document.getElementById(id);
      var said = document.querySelector('[data-copied="' + id + '"]');
      if (!src || !navigator.clipboard) { return; }
      btn.hidden = false;
      btn.addEventListener("click", function () {
        navigator.clipboard.writeText(src.textContent.trim()).then(
          function () { if (said) { said.textContent = "Copied."; } },
          function () { if (said) { said.textContent = "Copying was refused: select the text instead."; } });
      });
    });
    // A subject-type select points its name picker at that kind's names.
    document.querySelectorAll("select[data-picks]").forEach(function (sel) {
      var input = document.getElementById(sel.getAttribute("data-picks"));
      if (!input) { return; }
      sel.addEventListener("change", function () { input.setAttribute("list", sel.value + "-names"); });
    });
    document.querySelectorAll("form[data-passkey]").forEach(passkeyForm);
    var page = document.querySelector("[data-refresh]");
    if (page) { live(Math.max(5, parseInt(page.getAttribute("data-refresh"), 10) || 30)); }
  }
  // A passkey form: fetch the WebAuthn options, let the browser make or
  // use the passkey, then post the form with the credential as JSON (the
  // server answers with a page, like any sign-in step).
  function passkeyForm(form) {
    var status = form.querySelector(".passkey-status");
    var say = function (text) { if (status) { status.textContent = text; } };
    var PKC = window.PublicKeyCredential;
    if (!PKC || !PKC.parseCreationOptionsFromJSON || !PKC.parseRequestOptionsFromJSON) {
      say("This browser cannot use passkeys here.");
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      return;
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      say("Waiting for the passkey…");
      var body = new URLSearchParams();
      body.set("csrf_token", form.elements.csrf_token.value);
      if (form.elements.label) { body.set("label", form.elements.label.value); }
      fetch(form.getAttribute("data-options"), { method: "POST", body: body, credentials: "same-origin" })
        .then(function (res) {
          return res.json().then(function (json) {
            if (!res.ok) { throw new Error(json.detail || ("the server answered " + res.status)); }
            return json;
          });
        })
        .then(function (opts) {
          form.elements.ceremony.value = opts.ceremony;
          if (form.getAttribute("data-passkey") === "create") {
            return navigator.credentials.create({ publicKey: PKC.parseCreationOptionsFromJSON(opts.publicKey) });
          }
          return navigator.credentials.get({ publicKey: PKC.parseRequestOptionsFromJSON(opts.publicKey) });
        })
        .then(function (cred) {
          form.elements.credential.value = JSON.stringify(cred.toJSON());
          form.submit();
        })
        .catch(function (e) { say("No passkey was used: " + e.message); });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
