/* Progressive enhancement only: every bedside page works without this file. */
(function () {
  "use strict";

  // The order summary's Print button (hidden without JavaScript; the browser's Print command works).
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });

  // A grading helper is shown only while its toxicity is set to "Calculate from findings".
  document.querySelectorAll("[data-helper-for]").forEach(function (helper) {
    var name = helper.getAttribute("data-helper-for");
    var radios = document.querySelectorAll('input[name="' + name + '"]');
    function sync() {
      var checked = document.querySelector('input[name="' + name + '"]:checked');
      helper.hidden = !(checked && checked.value === "calculate");
    }
    radios.forEach(function (radio) { radio.addEventListener("change", sync); });
    sync();
  });
})();
