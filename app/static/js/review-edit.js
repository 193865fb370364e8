// Inline edits on the review page (review/_line_cell.html): Enter saves, Esc cancels (Shift+Enter is a new line in
// notes), the input is focused when it appears and the value's button when it comes back; a conflict or a
// ConnectWise refusal (409, 502, 503) is swapped in beside the field like a 422.
(function () {
  "use strict";
  if (window.reviewEditReady) { return; }
  window.reviewEditReady = true;
  document.addEventListener("keydown", function (event) {
    var form = event.target.closest && event.target.closest(".line-cell form");
    if (!form) { return; }
    if (event.key === "Escape") {
      event.preventDefault();
      var cancel = form.querySelector("[data-cancel]");
      if (cancel) { cancel.click(); } else if (window.htmx) {
        // After a conflict there is no Cancel button: fetch the value back the same way.
        window.htmx.ajax("GET", form.getAttribute("action"), { target: form.closest(".line-cell"), swap: "outerHTML" });
      }
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing &&
               (event.target.tagName !== "TEXTAREA" || event.target.hasAttribute("data-enter-saves"))) {
      event.preventDefault();
      if (form.querySelector(".cell-conflict")) { return; }  // choose Keep theirs or Apply mine
      form.requestSubmit();
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var target = event.detail.target;
    if (xhr && [409, 502, 503].indexOf(xhr.status) >= 0 && target && target.closest && target.closest("#review-lines")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var cell = event.detail.elt;
    if (!cell || !cell.classList || !cell.classList.contains("line-cell")) { return; }
    var focus = cell.querySelector("input[name=value], select[name=value], textarea[name=value]") ||
                cell.querySelector(".cell-value[autofocus]");
    if (focus) {
      focus.focus();
      if (focus.select && focus.tagName === "INPUT") { focus.select(); }
    }
  });
})();
