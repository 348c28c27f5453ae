// Live member count for the segment rule editor: a debounced POST of the rule JSON.
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function setup() {
    var textarea = document.getElementById("id_rules");
    var box = document.getElementById("kequn-live-count");
    if (!textarea || !box) return;
    var timer = null;
    var seq = 0;

    function show(text, isError) {
      box.textContent = text;
      box.classList.toggle("text-red-600", !!isError);
    }

    function refresh() {
      var rule;
      try {
        rule = JSON.parse(textarea.value || "{}");
      } catch (err) {
        show(box.dataset.invalidJson + " " + err.message, true);
        return;
      }
      var mine = ++seq;
      show(box.dataset.counting, false);
      fetch(box.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ rules: rule, segment_id: box.dataset.segmentId || null }),
      })
        .then(function (r) { return r.json(); })
        .then(function (data) {
          if (mine !== seq) return; // an older answer arrived after a newer request
          if (data.errors) show(data.errors.join("\n"), true);
          else show(box.dataset.label.replace("%s", data.count.toLocaleString()), false);
        })
        .catch(function (err) { if (mine === seq) show(String(err), true); });
    }

    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    });
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
