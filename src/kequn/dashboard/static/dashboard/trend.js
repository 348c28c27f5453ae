// Draw the dashboard's revenue and orders over time with the Chart.js that unfold ships.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("kq-trend-data");
    var canvas = document.getElementById("kq-trend-chart");
    if (!source || !canvas || typeof window.Chart === "undefined") {
      return;
    }
    var t = JSON.parse(source.textContent);
    var lang = document.documentElement.lang || "en";
    var money = new Intl.NumberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    var count = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
    var datasets = [
      { label: t.labels_text.revenue, data: t.revenue, yAxisID: "revenue", borderColor: "#6366f1",
        backgroundColor: "#6366f1", pointRadius: 2 },
      { label: t.labels_text.orders, data: t.orders, yAxisID: "orders", borderColor: "#10b981",
        backgroundColor: "#10b981", pointRadius: 2 }
    ];
    if (t.previous_revenue.length) {
      datasets.push({ label: t.labels_text.previous_revenue, data: t.previous_revenue, yAxisID: "revenue",
        borderColor: "#a5b4fc", backgroundColor: "#a5b4fc", borderDash: [6, 4], pointRadius: 0 });
      datasets.push({ label: t.labels_text.previous_orders, data: t.previous_orders, yAxisID: "orders",
        borderColor: "#6ee7b7", backgroundColor: "#6ee7b7", borderDash: [6, 4], pointRadius: 0 });
    }
    new window.Chart(canvas, {
      type: "line",
      data: { labels: t.labels, datasets: datasets },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          revenue: { type: "linear", position: "left", beginAtZero: true,
            ticks: { callback: function (v) { return count.format(v); } } },
          orders: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
            ticks: { precision: 0, callback: function (v) { return count.format(v); } } }
        },
        plugins: {
          tooltip: { callbacks: { label: function (ctx) {
            var f = ctx.dataset.yAxisID === "revenue" ? money : count;
            return ctx.dataset.label + ": " + f.format(ctx.parsed.y);
          } } }
        }
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
