/**
 * The instance manifest: the JSONL artifact that Twin's data stages pass along
 * (source -> prepare -> embed -> dedupe -> shortlist -> assemble). One row per object
 * instance; each image is a file path (raw sources) or a store artifact (prepared).
 */
export interface ManifestImage {
  /**
   * The source file as twin/source found it on the host that holds the catalog. Absent once
   * `images/prepare` has stored the image: from then on the image is its digest, readable on
   * any host through the artifact store, and `origin` keeps where it came from.
   */
  path?: string;
  /** Where the photo came from. */
  role: 'listing' | 'review' | 'generated';
  /** Set once `images/prepare` has stored the image: the digest of the prepared bytes. */
  sha256?: string;
  /**
   * sha256 of the source file's bytes as `twin/source` read them. It puts the content of
   * every listed file into the manifest's own digest, so an image edited in place changes
   * the manifest and every cache key downstream; `images/prepare` checks the file still
   * has these bytes.
   */
  source_sha256?: string;
  width?: number;
  height?: number;
  /** The original reference (URL or relative path) as the catalog gave it. */
  origin?: string;
}

export interface ManifestRow {
  /** Stable id: the listing's `parent_asin`, or the first ASIN of a merged group. */
  instance_id: string;
  /** Every listing merged into this instance (one unless dedupe merged some). */
  asins: string[];
  title: string;
  category: string;
  supercategory?: string;
  images: ManifestImage[];
}

export const MANIFEST_MEDIA_TYPE = 'application/x-twinflow-instances+jsonl';
