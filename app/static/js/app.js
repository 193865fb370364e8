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
