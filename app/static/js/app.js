// Small behaviours htmx does not cover: dismissing toasts, closing the user menu on outside click.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-dismiss='toast']");
    if (close) { close.closest(".toast").remove(); return; }
    document.querySelectorAll("details.usermenu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  // Toasts that are not errors leave on their own after a while.
  function expire(root) {
    root.querySelectorAll(".toast:not(.toast-error):not([data-expiring])").forEach(function (toast) {
      toast.setAttribute("data-expiring", "1");
      setTimeout(function () { toast.remove(); }, 6000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { expire(document); });
  document.addEventListener("htmx:afterSettle", function () { expire(document); });
})();

// Invoices: copy a public link to the clipboard (buttons with data-copy), and start a finished PDF download once.
(function () {
  "use strict";
  function copy(button) {
    var value = button.getAttribute("data-copy");
    var done = function () { button.textContent = "Copied"; button.classList.add("copied"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(done, function () { select(button); });
    } else {
      select(button);
    }
  }
  function select(button) {  // no clipboard access: select the link so Ctrl/Cmd+C copies it
    var field = button.parentElement && button.parentElement.querySelector("input.link-field");
    if (field) { field.focus(); field.select(); button.textContent = "Press Ctrl+C"; }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) { copy(button); }
  });
  // Validation errors answer 422 with the form re-rendered (DESIGN.md): swap them like a success.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    // A link just made by a click: copy it at once (the click still counts as the user's gesture).
    event.detail.elt.querySelectorAll("[data-copy-now]").forEach(function (button) {
      button.removeAttribute("data-copy-now");
      copy(button);
    });
    var root = event.detail.elt.parentElement || document;
    root.querySelectorAll("a[data-autodownload]").forEach(function (link) {
      link.removeAttribute("data-autodownload");
      link.click();
    });
  });
})();
