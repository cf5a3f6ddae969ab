// Progressive enhancement only: every page works without this file.
// JSON calls made from pages send the session's CSRF token.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
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
})();
