/* The comment box's keyboard and @mention popup (review/_comment_box.html). No inline script anywhere (CSP).
   Enter sends, Shift+Enter adds a line. "@" and what follows asks the server whom to offer (it filters, and leaves
   the invoice's reviewers out); arrows move, Enter or Tab picks, Esc closes. A pick writes "@Name " into the text
   and adds a chip (a list item holding the reference as a hidden "mention" input, with a remove button). The
   options (add as reviewers, email) show once the comment mentions someone. */
(function () {
  "use strict";

  var TOKEN = /(^|\s)@([^\s@]*(?:@[^\s]*)?(?: [^\s@]*)?)$/;
  var TYPED_EMAIL = /(^|\s)@[^\s@]+@[^\s@]+\.[^\s@]+/;

  function setup(form) {
    if (form.dataset.mentionsReady) return;
    form.dataset.mentionsReady = "1";
    var text = form.querySelector("textarea[name=text]");
    var popup = form.querySelector(".mention-popup");
    var chips = form.querySelector(".mention-chips");
    var options = form.querySelector(".comment-options");
    var status = form.querySelector("[data-mention-status]");
    var url = form.dataset.mentionsUrl;
    var people = [], active = -1, asked = 0, timer = null, token = null;

    function mentions() {
      return chips.querySelectorAll("input[name=mention]").length > 0 || TYPED_EMAIL.test(text.value);
    }
    function showOptions() { if (options) options.hidden = !mentions(); }
    function say(message) { if (status) status.textContent = message; }

    function close() {
      popup.hidden = true;
      popup.textContent = "";
      people = []; active = -1; token = null;
      text.setAttribute("aria-expanded", "false");
      text.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      var items = popup.querySelectorAll("[role=option]");
      if (!items.length) return;
      active = (index + items.length) % items.length;
      items.forEach(function (item, i) { item.setAttribute("aria-selected", i === active ? "true" : "false"); });
      text.setAttribute("aria-activedescendant", items[active].id);
      items[active].scrollIntoView({ block: "nearest" });
    }

    function render(found) {
      popup.textContent = "";
      people = found;
      if (!found.length) { close(); say("Nobody to mention matches."); return; }
      found.forEach(function (person, i) {
        var li = document.createElement("li");
        li.id = popup.id + "-" + i;
        li.setAttribute("role", "option");
        li.className = "mention-option";
        var name = document.createElement("span");
        name.className = "mention-name";
        name.textContent = person.name;
        var detail = document.createElement("span");
        detail.className = "mention-detail";
        detail.textContent = person.detail;
        li.appendChild(name);
        li.appendChild(detail);
        li.addEventListener("mousedown", function (event) { event.preventDefault(); pick(i); });
        popup.appendChild(li);
      });
      popup.hidden = false;
      text.setAttribute("aria-expanded", "true");
      highlight(0);
      say(found.length + (found.length === 1 ? " person" : " people") + " to mention: arrows to choose, Enter to pick.");
    }

    function ask(query) {
      var mine = ++asked;
      fetch(url + "?q=" + encodeURIComponent(query), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (found) { if (mine === asked && token !== null) render(found); })
        .catch(function () { if (mine === asked) close(); });
    }

    function typed() {
      var before = text.value.slice(0, text.selectionStart);
      var match = TOKEN.exec(before);
      if (!match) { asked++; close(); showOptions(); return; }
      token = { start: before.length - match[2].length - 1, end: text.selectionStart, query: match[2] };
      clearTimeout(timer);
      timer = setTimeout(function () { ask(token ? token.query : ""); }, 150);
      showOptions();
    }

    function addChip(person) {
      var exists = Array.prototype.some.call(chips.querySelectorAll("input[name=mention]"),
        function (input) { return input.value === person.key; });
      if (exists) return;
      var li = document.createElement("li");
      li.className = "mention-chip";
      var label = document.createElement("span");
      label.textContent = "@" + person.name;
      var input = document.createElement("input");
      input.type = "hidden"; input.name = "mention"; input.value = person.key;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "mention-remove";
      remove.textContent = "×";
      remove.setAttribute("aria-label", "Remove the mention of " + person.name);
      remove.addEventListener("click", function () { li.remove(); showOptions(); text.focus(); });
      li.appendChild(label); li.appendChild(input); li.appendChild(remove);
      chips.appendChild(li);
    }

    function pick(index) {
      var person = people[index];
      if (!person || !token) return;
      var insert = "@" + person.name + " ";
      text.value = text.value.slice(0, token.start) + insert + text.value.slice(token.end);
      var caret = token.start + insert.length;
      text.setSelectionRange(caret, caret);
      addChip(person);
      close();
      showOptions();
      say(person.name + " mentioned.");
      text.focus();
    }

    text.addEventListener("input", typed);
    text.addEventListener("blur", function () { setTimeout(close, 150); });
    text.addEventListener("keydown", function (event) {
      var open = !popup.hidden && people.length > 0;
      if (open && event.key === "ArrowDown") { event.preventDefault(); highlight(active + 1); return; }
      if (open && event.key === "ArrowUp") { event.preventDefault(); highlight(active - 1); return; }
      if (open && (event.key === "Enter" || event.key === "Tab") && !event.shiftKey) {
        event.preventDefault(); pick(active); return;
      }
      if (open && event.key === "Escape") { event.preventDefault(); event.stopPropagation(); asked++; close(); return; }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (text.value.trim()) form.requestSubmit();
      }
    });
    showOptions();
    if (form.hasAttribute("data-refocus")) text.focus();
  }

  function scan(root) {
    var forms = (root && root.querySelectorAll) ? root.querySelectorAll("form.comment-form") : [];
    if (root && root.matches && root.matches("form.comment-form")) setup(root);
    Array.prototype.forEach.call(forms, setup);
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (event) { scan(event.target); });
})();
