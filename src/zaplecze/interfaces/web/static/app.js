/* Zaplecze workbench: the trade blotter's grid (AG Grid Community, infinite row model over
   GET /api/trades), the dashboard's cash ladder (Chart.js). Both are optional: without the
   vendored libraries the server-rendered tables stay in place. Numbers stay strings: the grid
   shows them as the API sends them, the chart reads them only to draw. */
(function () {
  "use strict";

  function blotter(element) {
    if (!window.agGrid || !window.agGrid.createGrid) return;
    var grid = window.agGrid;
    if (grid.ModuleRegistry && grid.AllCommunityModule) {
      grid.ModuleRegistry.registerModules([grid.AllCommunityModule]);
    }
    var labels = JSON.parse(element.dataset.columns || "{}");
    var filters = JSON.parse(element.dataset.filters || "{}");
    var pageSize = parseInt(element.dataset.pageSize || "50", 10);
    var sortable = { trade_date: 1, trade_id: 1, account: 1, isin: 1, settlement_date: 1 };
    var numeric = { quantity: 1, price: 1 };
    var columns = Object.keys(labels).map(function (field) {
      return {
        field: field, headerName: labels[field], sortable: !!sortable[field],
        type: numeric[field] ? "rightAligned" : undefined, resizable: true,
        cellRenderer: field === "account" ? function (p) {
          if (!p.value) return "";
          var a = document.createElement("a");
          a.href = "/accounts/" + encodeURIComponent(p.value);
          a.textContent = p.value;
          return a;
        } : undefined
      };
    });
    var source = {
      getRows: function (params) {
        var query = new URLSearchParams(filters);
        query.set("limit", String(params.endRow - params.startRow));
        query.set("offset", String(params.startRow));
        if (params.sortModel && params.sortModel.length) {
          query.set("sort", params.sortModel[0].colId);
          query.set("order", params.sortModel[0].sort);
        }
        fetch(element.dataset.endpoint + "?" + query.toString(),
              { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (response) {
            if (response.status === 401) { window.location.reload(); throw new Error("401"); }
            if (!response.ok) throw new Error(String(response.status));
            return response.json();
          })
          .then(function (page) { params.successCallback(page.items, page.total); })
          .catch(function () { params.failCallback(); });
      }
    };
    grid.createGrid(element, {
      columnDefs: columns, rowModelType: "infinite", datasource: source,
      cacheBlockSize: pageSize, maxBlocksInCache: 20, rowHeight: 28, headerHeight: 30,
      defaultColDef: { flex: 1, minWidth: 90 },
      getRowId: function (p) { return p.data.trade_id; }
    });
    element.classList.add("ready");
  }

  function ladder(canvas) {
    if (!window.Chart) return;
    var data = JSON.parse(canvas.dataset.chart || "{}");
    var locale = canvas.dataset.locale || "en-GB";
    var palette = ["#1f5fa8", "#c2571a", "#1e7a3c", "#7a3ca8", "#a81f4f", "#4f6b80"];
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: (data.series || []).map(function (s, i) {
          return { label: s.label, data: s.data.map(Number), backgroundColor: palette[i % 6] };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, locale: locale,
        plugins: { tooltip: { callbacks: { label: function (item) {
          var s = data.series[item.datasetIndex];
          return s.label + ": " + s.data[item.dataIndex];  /* the exact decimal, as sent */
        } } } }
      }
    });
  }

  function start() {
    var grid = document.getElementById("trades-grid");
    if (grid) blotter(grid);
    var chart = document.getElementById("cash-ladder-chart");
    if (chart) ladder(chart);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
