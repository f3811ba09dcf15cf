/* Progressive enhancement only: every bedside page works without this file. */
(function () {
  "use strict";

  // The order summary's Print button (hidden without JavaScript; the browser's Print command works).
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  // Questions that apply only after an answer: shown while the radio group `data-reveal-for` has one of
  // `data-reveal-values` (or none of `data-hide-values`) checked. `data-reveal-unanswered` keeps one
  // shown while the group is unanswered (its own questions already have answers). Without JavaScript
  // every question stays visible, labelled with when it applies.
  document.querySelectorAll("[data-reveal-for]").forEach(function (block) {
    var name = block.getAttribute("data-reveal-for");
    var shown = (block.getAttribute("data-reveal-values") || "").split(" ").filter(Boolean);
    var hidden = (block.getAttribute("data-hide-values") || "").split(" ").filter(Boolean);
    var radios = document.querySelectorAll('input[name="' + name + '"]');
    function sync() {
      var checked = document.querySelector('input[name="' + name + '"]:checked');
      var value = checked ? checked.value : "";
      var show;
      if (!checked && block.hasAttribute("data-reveal-unanswered")) {
        show = true;
      } else if (shown.length) {
        show = shown.indexOf(value) !== -1;
      } else {
        show = hidden.indexOf(value) === -1;
      }
      block.hidden = !show;
    }
    radios.forEach(function (radio) { radio.addEventListener("change", sync); });
    sync();
  });

  // Where the server asked for focus (an error summary, a calculated grade, a result's heading), put it
  // there if the browser's autofocus did not.
  var target = document.querySelector("[data-focus-on-load]");
  if (target && document.activeElement !== target && !target.contains(document.activeElement)) {
    target.focus({ preventScroll: location.hash !== "" });
  }
})();
