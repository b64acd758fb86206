/* 企业平安指数 unit view: the history line and the anonymised peer bars (ECharts, vendored).
   The data comes from <script type="application/json" id="si-data"> (no inline scripts: CSP). */
(function () {
  "use strict";
  var node = document.getElementById("si-data");
  if (!node) { return; }
  var data = JSON.parse(node.textContent || "{}");
  var colours = { excellent: "#2e7d32", good: "#1e88e5", fair: "#f9a825", poor: "#c62828" };

  function chart(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    if (typeof window.echarts === "undefined") { el.textContent = "—"; el.classList.add("si-nochart"); return null; }
    return window.echarts.init(el, null, { renderer: "canvas" });
  }

  var history = chart("si-history-chart");
  if (history) {
    history.setOption({
      animation: false,
      grid: { left: 40, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: data.history.map(function (h) { return h.month; }) },
      yAxis: { type: "value", min: 0, max: 100 },
      series: [{
        name: data.labels.score, type: "line", smooth: false, symbolSize: 8,
        data: data.history.map(function (h) { return { value: h.score, itemStyle: { color: colours[h.grade] } }; }),
        lineStyle: { color: "#5b6b7b" },
        markArea: { silent: true, data: [
          [{ yAxis: 90, itemStyle: { color: "rgba(46,125,50,0.06)" } }, { yAxis: 100 }],
          [{ yAxis: 0, itemStyle: { color: "rgba(198,40,40,0.06)" } }, { yAxis: 60 }]
        ] }
      }]
    });
  }

  var peers = chart("si-peer-chart");
  if (peers) {
    var ownIndex = data.peers.indexOf(data.own);
    peers.setOption({
      animation: false,
      grid: { left: 40, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "item", formatter: function (p) {
        return (p.dataIndex === ownIndex ? data.labels.own : data.labels.peers) + ": " + p.value;
      } },
      xAxis: { type: "category", data: data.peers.map(function (_, i) { return i + 1; }) },
      yAxis: { type: "value", min: 0, max: 100 },
      series: [{
        type: "bar",
        data: data.peers.map(function (s, i) {
          return { value: s, itemStyle: { color: i === ownIndex ? "#1e88e5" : "#c5ced8" } };
        })
      }]
    });
  }
  window.addEventListener("resize", function () {
    if (history) { history.resize(); }
    if (peers) { peers.resize(); }
  });
})();
