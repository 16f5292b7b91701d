// Lists the packages node can load from node_modules trees: every directory
// node's module resolution looks in (node_modules/<name>,
// node_modules/@scope/<name>, and their own nested node_modules), with the
// package.json node itself reads there through require().
// Usage: node nodewalk.js ROOT NODE_MODULES_DIR... ; prints "name version path".
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(process.argv[2]);
const out = [];

function packageDirs(nm) {
  let ents;
  try {
    ents = fs.readdirSync(nm, { withFileTypes: true });
  } catch (e) {
    return [];
  }
  const dirs = [];
  for (const e of ents) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const p = path.join(nm, e.name);
    if (e.name.startsWith('@')) {
      for (const s of fs.readdirSync(p, { withFileTypes: true })) {
        if (s.isDirectory()) dirs.push(path.join(p, s.name));
      }
    } else {
      dirs.push(p);
    }
  }
  return dirs;
}

function walk(nm) {
  for (const dir of packageDirs(nm)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      const m = require(pj);
      if (typeof m.name === 'string' && typeof m.version === 'string' && m.name && m.version) {
        out.push(`${m.name} ${m.version} ${path.relative(root, pj)}`);
      }
    }
    walk(path.join(dir, 'node_modules'));
  }
}

for (const nm of process.argv.slice(3)) walk(path.resolve(nm));
out.sort();
process.stdout.write(out.join('\n') + '\n');
