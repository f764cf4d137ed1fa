export {
  ArchiveFormats,
  detectFormat,
  extractArchive,
  inspectArchive,
  type ArchiveFormat,
  type ExtractResult,
} from './extract.js';
export { type ExtractLimits } from './extract/sink.js';
export { ArchiveIssueCodes, type ArchiveIssueCode } from './extract/refusal.js';
export {
  ARCHIVE_CHUNK_BYTES,
  ArchiveStore,
  checkArchiveVersion,
  deleteArchiveBucket,
  deleteDataBucket,
  ensureArchiveBucket,
  ensureDataBucket,
  type ArchiveInfo,
  type ArchiveReader,
} from './object-store.js';
export { fetchArchive, type FetchArchiveOptions, type FetchedArchive } from './fetch.js';
