/* 数字驾驶舱: charts (ECharts, vendored), the unit map over the vendored outline, and the live feed
   (WebSocket /ws topic "feed", with the /api/v1/cockpit/feed backlog as start and fallback).
   No inline scripts or styles: the page passes everything through data- attributes (CSP). */
(function () {
  "use strict";
  var root = document.getElementById("cockpit");
  if (!root) { return; }
  var query = root.dataset.query || "";
  var big = root.dataset.big === "1";
  var API = "/api/v1/cockpit/";
  var charts = [];
  var text = big ? "#dce8f7" : "#1d2733";
  var grid = big ? "#1f4f86" : "#e3e8ef";

  function api(path) {
    return fetch(API + path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); });
  }
  function chart(id) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    if (typeof window.echarts === "undefined") {
      el.textContent = "—";
      el.classList.add("ck-nochart");
      return null;
    }
    var c = window.echarts.getInstanceByDom(el) || window.echarts.init(el, null, { renderer: "canvas" });
    if (charts.indexOf(c) < 0) { charts.push(c); }
    return c;
  }
  function scaled(v, kind) { return v === null || v === undefined ? null : (kind === "rate" ? +(v * 100).toFixed(2) : v); }
  function kpiSelect() { return document.getElementById("ck-trend-kpi"); }
  function kpiKind(code) {
    var card = document.querySelector('.ck-kpi[data-kpi="' + code + '"] .ck-value');
    return card && card.textContent.indexOf("%") >= 0 ? "rate" : "count";
  }

  function drawTrend() {
    var c = chart("ck-trend");
    var sel = kpiSelect();
    if (!c || !sel) { return; }
    var el = document.getElementById("ck-trend");
    var kpi = sel.value;
    api("trend?kpi=" + encodeURIComponent(kpi) + "&months=13&" + query).then(function (d) {
      var kind = kpiKind(kpi);
      c.setOption({
        textStyle: { color: text },
        tooltip: { trigger: "axis", renderMode: "richText" },
        legend: { data: [el.dataset.labelThis, el.dataset.labelLast], textStyle: { color: text } },
        grid: { left: 50, right: 20, top: 36, bottom: 28 },
        xAxis: { type: "category", data: d.items.map(function (i) { return i.month; }), axisLabel: { color: text } },
        yAxis: { type: "value", axisLabel: { color: text, formatter: kind === "rate" ? "{value}%" : "{value}" },
                 splitLine: { lineStyle: { color: grid } } },
        series: [
          { name: el.dataset.labelThis, type: "line", smooth: true, symbolSize: 6,
            data: d.items.map(function (i) { return scaled(i.value, kind); }), areaStyle: { opacity: 0.12 } },
          { name: el.dataset.labelLast, type: "line", smooth: true, symbolSize: 4, lineStyle: { type: "dashed" },
            data: d.items.map(function (i) { return scaled(i.year_before, kind); }) }
        ]
      }, true);
    }).catch(function () { /* the figures above still stand */ });
  }

  function drawBars() {
    var c = chart("ck-bar");
    var sel = kpiSelect();
    var by = document.getElementById("ck-bar-by");
    if (!c || !sel) { return; }
    var kpi = sel.value;
    api("breakdown?kpi=" + encodeURIComponent(kpi) + "&by=" + (by ? by.value : "category") + "&" + query)
      .then(function (d) {
        var kind = kpiKind(kpi);
        var items = d.items.slice(0, 12).reverse();
        c.setOption({
          textStyle: { color: text },
          tooltip: { trigger: "axis", renderMode: "richText" },
          grid: { left: 110, right: 30, top: 10, bottom: 24 },
          xAxis: { type: "value", axisLabel: { color: text }, splitLine: { lineStyle: { color: grid } } },
          yAxis: { type: "category", data: items.map(function (i) { return i.label; }), axisLabel: { color: text } },
          series: [{ type: "bar", data: items.map(function (i) { return scaled(i.value, kind); }),
                     itemStyle: { color: big ? "#3fa7ff" : "#1667b7" }, barMaxWidth: 22,
                     label: { show: true, position: "right", color: text,
                              formatter: kind === "rate" ? "{c}%" : "{c}" } }]
        }, true);
      }).catch(function () {});
  }

  var outlineReady = null;
  function drawMap() {
    var c = chart("ck-map");
    var el = document.getElementById("ck-map");
    if (!c || !el) { return; }
    var grades = JSON.parse(el.dataset.grades || "{}");
    var colours = { excellent: "#2e7d32", good: "#1565c0", fair: "#f9a825", poor: "#c62828" };
    outlineReady = outlineReady || api("outline").then(function (g) { window.echarts.registerMap("eqian-district", g); });
    Promise.all([outlineReady, api("map?" + query)]).then(function (res) {
      var d = res[1];
      var groups = { excellent: [], good: [], fair: [], poor: [], none: [] };
      d.items.forEach(function (p) {
        (groups[p.grade] || groups.none).push({ name: p.name, value: [p.lng, p.lat, p.score], id: p.unit_id });
      });
      var series = Object.keys(groups).map(function (g) {
        return { name: g === "none" ? el.dataset.none : grades[g], type: "scatter", coordinateSystem: "geo",
                 data: groups[g], symbolSize: g === "none" ? 4 : 7,
                 itemStyle: { color: colours[g] || "#9aa5b1", opacity: 0.85 } };
      });
      c.setOption({
        textStyle: { color: text },
        tooltip: { trigger: "item", renderMode: "richText", formatter: function (p) {
          var s = p.value && p.value[2] !== null && p.value[2] !== undefined ? " · " + p.value[2] : "";
          return p.name + " (" + p.seriesName + s + ")";
        } },
        legend: { bottom: 0, textStyle: { color: text } },
        geo: { map: "eqian-district", roam: true, aspectScale: 0.86, layoutCenter: ["50%", "48%"], layoutSize: "95%",
               itemStyle: { areaColor: big ? "#0f2f57" : "#eef3f9", borderColor: big ? "#4aa3ff" : "#7b93b0", borderWidth: 1.5 },
               emphasis: { disabled: true }, label: { show: false } },
        series: series
      }, true);
      c.off("click");
      c.on("click", function (p) { if (p.data && p.data.id) { window.location.href = "/units/" + p.data.id; } });
    }).catch(function () {});
  }

  // --- live feed ---------------------------------------------------------------------------------
  var feedEl = document.getElementById("ck-feed");
  var seen = {};
  function fmt(at) {
    var d = new Date(at);
    if (isNaN(d.getTime())) { return ""; }
    return d.toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit",
                                       hour: "2-digit", minute: "2-digit", hour12: false });
  }
  function addItem(item, fresh) {
    if (!feedEl || !item || !item.link) { return; }
    var key = item.kind + "|" + item.link;
    if (seen[key]) { return; }
    seen[key] = true;
    var empty = feedEl.querySelector(".muted, .ck-empty");
    if (empty) { empty.remove(); }
    var li = document.createElement("li");
    li.dataset.kind = item.kind;
    var t = document.createElement("time");
    t.textContent = fmt(item.at);
    var a = document.createElement("a");
    a.href = item.link;
    a.textContent = item.title;
    li.appendChild(t);
    li.appendChild(a);
    if (fresh) { li.classList.add("ck-new"); feedEl.insertBefore(li, feedEl.firstChild); }
    else { feedEl.appendChild(li); }
    while (feedEl.children.length > 50) { feedEl.removeChild(feedEl.lastChild); }
  }
  function backlog(fresh) {
    return api("feed?limit=20").then(function (d) {
      if (!fresh && feedEl) { feedEl.textContent = ""; }
      var items = fresh ? d.items.slice().reverse() : d.items;
      items.forEach(function (i) { addItem(i, fresh); });
      if (feedEl && !feedEl.children.length) {
        var li = document.createElement("li");
        li.className = "ck-empty muted";
        li.textContent = feedEl.dataset.empty;
        feedEl.appendChild(li);
      }
    }).catch(function () {});
  }
  var live = document.getElementById("ck-live");
  function setLive(on) {
    if (!live) { return; }
    live.textContent = on ? live.dataset.on : live.dataset.off;
    live.classList.toggle("on", on);
  }
  var retry = 1000;
  function connect() {
    if (!("WebSocket" in window)) { setLive(false); return; }
    var ws;
    try { ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws"); }
    catch (e) { setLive(false); return; }
    ws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "ready") {
        ws.send(JSON.stringify({ type: "subscribe", topics: ["feed"] }));
        setLive(true);
        retry = 1000;
      } else if (m.type === "feed" && m.item) {
        addItem(m.item, true);
      }
    };
    ws.onclose = function (ev) {
      setLive(false);
      if (ev.code === 4401 || ev.code === 4403 || ev.code === 4001) { return; }
      retry = Math.min(retry * 2, 30000);
      setTimeout(connect, retry);
    };
  }

  function drawAll() { drawTrend(); drawBars(); drawMap(); }
  document.addEventListener("DOMContentLoaded", function () {
    var sel = kpiSelect();
    if (sel) { sel.addEventListener("change", function () { drawTrend(); drawBars(); }); }
    var by = document.getElementById("ck-bar-by");
    if (by) { by.addEventListener("change", drawBars); }
    drawAll();
    backlog(false).then(connect);
    setInterval(function () { backlog(true); }, 30000);  // catches anything a dropped socket missed
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
    var clock = document.getElementById("ck-clock");
    if (clock) {
      var tick = function () {
        clock.textContent = new Date().toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
      };
      tick();
      setInterval(tick, 1000);
    }
    var refresh = parseInt(root.dataset.refresh || "0", 10);
    if (refresh > 0) {  // the big screen: new figures without anyone touching it
      setInterval(function () {
        fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector(".ck-screen-kpis");
          var here = document.querySelector(".ck-screen-kpis");
          if (fresh && here) { here.innerHTML = fresh.innerHTML; }
          drawAll();
        }).catch(function () {});
      }, refresh * 1000);
    }
  });
})();
