import { DefaultNamingStrategy } from 'typeorm';

/**
 * Keeps Graph's property names verbatim in column names. TypeORM's default lower-cases all but the first letter of an
 * embedded property (`state.deviceImportStatus` → `stateDeviceimportstatus`); here it is `stateDeviceImportStatus`.
 */
export class GraphNamingStrategy extends DefaultNamingStrategy {
  override columnName(propertyName: string, customName: string | undefined, embeddedPrefixes: string[]): string {
    const name = customName || propertyName;
    if (embeddedPrefixes.length === 0) return name;
    return embeddedPrefixes.join('') + name.charAt(0).toUpperCase() + name.slice(1);
  }
}
