// What GOV.UK Frontend's template does in an inline script, here from a file so the pages'
// Content-Security-Policy can forbid every inline script. Loaded first thing in <body>.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '')
