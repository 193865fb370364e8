// Sign-up: the new workspace's time zone starts as the browser's own (the server checks it, UTC if absent).
(function () {
  "use strict";
  function fill() {
    var field = document.querySelector("input[data-browser-timezone]");
    if (!field || field.value || !window.Intl || !Intl.DateTimeFormat) return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) field.value = zone;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fill);
  else fill();
})();
