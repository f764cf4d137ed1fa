export {
  ArchiveFormats,
  detectFormat,
  extractArchive,
  type ArchiveFormat,
  type ExtractResult,
} from './extract.js';
export { type ExtractLimits } from './extract/sink.js';
export { ArchiveIssueCodes, type ArchiveIssueCode } from './extract/refusal.js';
export {
  ARCHIVE_BUCKET,
  ARCHIVE_CHUNK_BYTES,
  ArchiveStore,
  archiveName,
  ensureArchiveBucket,
  parseArchiveName,
  type ArchiveInfo,
  type ArchiveReader,
} from './object-store.js';
export { fetchArchive, type FetchArchiveOptions, type FetchedArchive } from './fetch.js';
