// The workspace settings page: offer the browser's own time zone when it differs from the saved one.
(function () {
  "use strict";
  function offer() {
    var box = document.getElementById("browser-zone");
    var select = document.getElementById("timezone");
    if (!box || !select || !window.Intl || !Intl.DateTimeFormat) return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (!zone || zone === box.getAttribute("data-current")) return;
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === zone; });
    if (!known) return;
    box.querySelector("[data-browser-zone-name]").textContent = zone.replace(/_/g, " ");
    box.hidden = false;
    box.querySelector("[data-use-browser-zone]").addEventListener("click", function () {
      select.value = zone;
      select.focus();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", offer);
  else offer();
})();
