declare module 'odata-openapi' {
  export function csdl2openapi(
    csdl: Record<string, unknown>,
    options?: {
      scheme?: string;
      host?: string;
      basePath?: string;
      openapiVersion?: string;
      maxLevels?: number;
      messages?: string[];
      skipBatchPath?: boolean;
      defaultTitle?: string;
      defaultDescription?: string;
      rootResourcesToKeep?: string[];
    },
  ): Record<string, unknown>;
}
