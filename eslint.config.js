import neostandard from 'neostandard'
import globals from 'globals'

/** Node's globals turned off: a browser script that names `process` or `Buffer` is a mistake. */
const noNodeGlobals = Object.fromEntries(Object.keys(globals.node).map((name) => [name, 'off']))

export default [
  ...neostandard({
    ts: true,
    ignores: [
      '**/dist/**',
      'node_modules/**',
      '.tap/**',
      'coverage/**'
    ]
  }),
  {
    // The example page's script runs in the browser, as an ES module.
    files: ['example/public/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { ...noNodeGlobals, ...globals.browser }
    }
  }
]
