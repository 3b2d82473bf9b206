// Builds the pages' assets from npm packages into web/static/dist (ignored by git, served at
// /static/dist): Sass compiled with the `sass` package, GOV.UK Frontend's and MOJ Frontend's
// JavaScript, htmx, fonts and images copied. Run by `npm run build` (and `make install`).
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as sass from 'sass'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const modules = join(root, 'node_modules')
const out = join(here, 'dist')
const govuk = join(modules, 'govuk-frontend', 'dist', 'govuk')
const moj = join(modules, '@ministryofjustice', 'frontend', 'moj')

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })

const css = sass.compile(join(here, 'src', 'app.scss'), {
  loadPaths: [modules, root],
  style: 'compressed',
  quietDeps: true,
  silenceDeprecations: ['import', 'global-builtin', 'color-functions', 'mixed-decls']
})
writeFileSync(join(out, 'app.css'), css.css)

cpSync(join(govuk, 'govuk-frontend.min.js'), join(out, 'govuk-frontend.min.js'))
cpSync(join(moj, 'moj-frontend.min.js'), join(out, 'moj-frontend.min.js'))
cpSync(join(modules, 'htmx.org', 'dist', 'htmx.min.js'), join(out, 'htmx.min.js'))
cpSync(join(here, 'src', 'app.mjs'), join(out, 'app.mjs'))
cpSync(join(here, 'src', 'supported.js'), join(out, 'supported.js'))
cpSync(join(here, 'src', 'dashboard.mjs'), join(out, 'dashboard.mjs'))
cpSync(join(modules, 'chart.js', 'dist', 'chart.umd.min.js'), join(out, 'chart.umd.min.js'))
cpSync(join(govuk, 'assets'), join(out, 'assets'), { recursive: true })
cpSync(join(moj, 'assets', 'images'), join(out, 'assets', 'images'), { recursive: true })
console.log(`assets built into ${out}`)
