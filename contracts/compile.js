// Compile contracts/TestToken.sol with npm solc 0.8.37 (offline, bundled soljson) into
// contracts/TestToken.json = { abi, bytecode, compiler }. evmVersion "shanghai" so the one
// artifact runs on eth-tester (py-evm), anvil and ganache. Run: node contracts/compile.js
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const NAME = 'TestToken';
const here = __dirname;
const settings = {
  evmVersion: 'shanghai',
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
};
const input = {
  language: 'Solidity',
  sources: { [`${NAME}.sol`]: { content: fs.readFileSync(path.join(here, `${NAME}.sol`), 'utf8') } },
  settings,
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const problems = (out.errors || []).filter((e) => e.severity === 'error');
for (const e of out.errors || []) console.error(e.formattedMessage || e.message);
if (problems.length) process.exit(1);
const c = out.contracts[`${NAME}.sol`][NAME];
const artifact = {
  contractName: NAME,
  abi: c.abi,
  bytecode: '0x' + c.evm.bytecode.object,
  compiler: { solc: solc.version(), evmVersion: settings.evmVersion, optimizer: settings.optimizer },
};
fs.writeFileSync(path.join(here, `${NAME}.json`), JSON.stringify(artifact, null, 1) + '\n');
console.log(`wrote contracts/${NAME}.json (${c.evm.bytecode.object.length / 2} bytes of bytecode)`);
