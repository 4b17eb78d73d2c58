// Ferry's version, kept in one place (package.json is checked against it by a test).
export const FERRY_VERSION = '0.1.0';
