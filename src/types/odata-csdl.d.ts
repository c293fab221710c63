declare module 'odata-csdl' {
  export function xml2json(xml: string, options?: { annotations?: boolean; strict?: boolean; messages?: unknown[] }): unknown;
}
