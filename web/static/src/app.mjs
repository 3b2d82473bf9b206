// Starts GOV.UK Frontend's and MOJ Frontend's components on every page.
import { initAll as govukInitAll } from './govuk-frontend.min.js'
import { initAll as mojInitAll } from './moj-frontend.min.js'

govukInitAll()
mojInitAll()

// htmx swaps in new rows (queues polling for new work): start the components inside them too.
document.body.addEventListener('htmx:afterSwap', (event) => {
  govukInitAll({ scope: event.target })
})
