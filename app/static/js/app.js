// Small behaviours htmx does not cover: dismissing toasts; the header's menus (<details data-menu>: the Settings menu,
// the phone Menu, the account menu) closing on an outside click or Escape; focus after htmx swaps; the branding
// form's sticky save bar never covering the field that has focus.
(function () {
  "use strict";
  function openMenus() { return document.querySelectorAll("details[data-menu][open]"); }
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-dismiss='toast']");
    if (close) { close.closest(".toast").remove(); return; }
    openMenus().forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
  // Escape closes the menu the person is in (or any open one) and gives focus back to its button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var menus = openMenus();
    if (!menus.length) { return; }
    var inside = document.activeElement && document.activeElement.closest("details[data-menu][open]");
    var menu = inside || menus[menus.length - 1];
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
    event.preventDefault();
  });
  // After an htmx swap, the first element of the new content marked data-focus-after-swap gets focus (the new link
  // field, the first new row after paging, the download button of a ready PDF). Swapped-in content only, so a page's
  // first render never moves focus.
  document.addEventListener("htmx:afterSettle", function (event) {
    var root = event.detail.elt || event.target;
    if (!root || !root.querySelector) { return; }
    var target = root.matches("[data-focus-after-swap]") ? root : root.querySelector("[data-focus-after-swap]");
    if (!target || !target.isConnected || target === document.activeElement) { return; }
    if (!target.matches("a[href], button, input, select, textarea, summary, [tabindex]")) {
      target.setAttribute("tabindex", "-1");  // a row or a heading: focusable by script, not a tab stop
    }
    target.focus();
  });
  // A field that gets focus under a sticky save bar (.form-actions) scrolls up to sit just above it.
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    var form = field.closest && field.closest("form");
    var bar = form && form.querySelector(".form-actions");
    if (!bar || bar.contains(field) || getComputedStyle(bar).position !== "sticky") { return; }
    // After the browser's own scroll-into-view for the focus (html's scroll-padding-bottom does most of the work).
    requestAnimationFrame(function () {
      var covered = field.getBoundingClientRect().bottom - bar.getBoundingClientRect().top + 12;
      if (covered > 0) { window.scrollBy(0, covered); }
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
