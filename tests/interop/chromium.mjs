// Headless Chromium for the browser checks (browser.mjs, browser-ws.mjs, browser-h2.mjs): Debian's
// package, or the binary CHROMIUM names.
import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chromium } from 'playwright-core'

// `trust`: a PEM file whose first certificate is the test server's. Chromium accepts that
// certificate's key however the chain looks (`--ignore-certificate-errors-spki-list`, the
// base64 SHA-256 of its SubjectPublicKeyInfo), and still checks every other certificate.
export function launchChromium({ trust } = {}) {
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ]
  if (trust) args.push(`--ignore-certificate-errors-spki-list=${spkiHash(trust)}`)
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args })
}

function spkiHash(pemFile) {
  const spki = new X509Certificate(readFileSync(pemFile)).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('base64')
}
