// The deal board: drag a card to a column, or focus it and press ArrowLeft/ArrowRight.
// A refused move (won without an amount, lost without a reason, a past close date) leaves
// the card where it was and shows the server's message.
(function () {
  "use strict";

  function init() {
    var board = document.getElementById("sales-board");
    if (!board || board.dataset.canMove !== "1") return;
    var message = document.getElementById("board-message");
    var csrf = board.querySelector("input[name=csrfmiddlewaretoken]").value;
    var columns = Array.prototype.slice.call(board.querySelectorAll(".sales-column"));

    function say(text, isError) {
      message.textContent = text;
      message.classList.toggle("error", !!isError);
    }

    function updateTotals(totals) {
      columns.forEach(function (column) {
        var values = totals[column.dataset.stage];
        if (!values) return;
        ["count", "total", "weighted"].forEach(function (name) {
          column.querySelector("[data-total=" + name + "]").textContent = values[name];
        });
      });
    }

    function move(card, column) {
      var from = card.closest(".sales-column");
      if (!column || column === from) return;
      var body = new URLSearchParams();
      body.set("deal", card.dataset.deal);
      body.set("stage", column.dataset.stage);
      if (column.dataset.lost === "1") {
        var reason = window.prompt(board.dataset.lostPrompt);
        if (reason === null) return;
        body.set("lost_reason", reason);
      }
      fetch(board.dataset.moveUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "Content-Type": "application/x-www-form-urlencoded" },
        body: body.toString(),
      })
        .then(function (response) {
          return response.json().then(function (data) {
            return { ok: response.ok, data: data };
          });
        })
        .then(function (result) {
          if (!result.ok) {
            say(result.data.error || "error", true);
            card.focus();
            return;
          }
          column.querySelector(".sales-cards").appendChild(card);
          updateTotals(result.data.columns);
          say(card.querySelector("a").textContent + " → " + column.getAttribute("aria-label"), false);
          card.focus();
        })
        .catch(function (error) {
          say(String(error), true);
        });
    }

    board.addEventListener("dragstart", function (event) {
      var card = event.target.closest(".sales-card");
      if (!card) return;
      event.dataTransfer.setData("text/plain", card.dataset.deal);
      event.dataTransfer.effectAllowed = "move";
    });
    columns.forEach(function (column) {
      column.addEventListener("dragover", function (event) {
        event.preventDefault();
        column.classList.add("drop-target");
      });
      column.addEventListener("dragleave", function () {
        column.classList.remove("drop-target");
      });
      column.addEventListener("drop", function (event) {
        event.preventDefault();
        column.classList.remove("drop-target");
        var id = event.dataTransfer.getData("text/plain");
        var card = board.querySelector('.sales-card[data-deal="' + id + '"]');
        if (card) move(card, column);
      });
    });
    board.addEventListener("keydown", function (event) {
      var card = event.target.closest(".sales-card");
      if (!card || (event.key !== "ArrowLeft" && event.key !== "ArrowRight")) return;
      event.preventDefault();
      var index = columns.indexOf(card.closest(".sales-column"));
      var target = columns[index + (event.key === "ArrowRight" ? 1 : -1)];
      if (target) move(card, target);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
