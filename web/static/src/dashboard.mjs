// Draws each dashboard chart from the data table beside it (the table is the source: what a
// screen reader reads is what the chart shows). Chart.js is loaded by the page as a classic
// script (/static/dist/chart.umd.min.js) before this module runs.
const COLOURS = ['#1d70b8', '#00703c', '#d4351c', '#f47738', '#4c2c92', '#b58840', '#28a197', '#6f72af']
const PALETTES = { rating: ['#d4351c', '#f47738', '#b1b4b6', '#85994b', '#00703c'] }

function read (table, series, colours) {
  const headers = [...table.tHead.rows[0].cells].map((cell) => cell.textContent.trim())
  const rows = [...table.tBodies[0].rows]
  const labels = rows.map((row) => row.cells[0].textContent.trim())
  const datasets = series.map((index, n) => ({
    label: headers[index],
    data: rows.map((row) => {
      const value = row.cells[index]?.dataset.value
      return value === undefined ? null : Number(value)
    }),
    backgroundColor: colours[n % colours.length],
    borderColor: colours[n % colours.length]
  }))
  return { labels, datasets }
}

function draw (holder) {
  const table = document.getElementById(holder.dataset.table)
  const canvas = holder.querySelector('canvas')
  if (!table || !canvas || !window.Chart) return
  const series = holder.dataset.series.split(',').map(Number)
  const kind = holder.dataset.chart
  const percent = holder.dataset.percent === 'true'
  const stacked = kind === 'stacked'
  // eslint-disable-next-line no-new
  new window.Chart(canvas, {
    type: kind === 'line' ? 'line' : 'bar',
    data: read(table, series, PALETTES[holder.dataset.palette] || COLOURS),
    options: {
      animation: false,
      maintainAspectRatio: false,
      plugins: { legend: { display: series.length > 1 } },
      scales: {
        x: { stacked },
        y: {
          stacked,
          beginAtZero: true,
          ...(percent ? { max: 100, ticks: { callback: (v) => `${v}%` } } : { ticks: { precision: 0 } })
        }
      }
    }
  })
}

document.querySelectorAll('.fd-chart[data-chart]').forEach(draw)
