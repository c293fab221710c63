import type { Config } from 'jest';

const config: Config = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Two cores: run files two at a time; each test file starts its own server on an ephemeral port.
  maxWorkers: 2,
  testTimeout: 30000,
  transform: { '^.+\\.ts$': 'ts-jest' },
};

export default config;
