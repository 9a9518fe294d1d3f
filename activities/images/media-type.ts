/** The media type of an image file from its first bytes (never from a name the request gave). */
export function imageType(head: Uint8Array): string {
  if (head[0] === 0xff && head[1] === 0xd8) return 'image/jpeg';
  if (head[0] === 0x89 && head[1] === 0x50 && head[2] === 0x4e && head[3] === 0x47) return 'image/png';
  if (String.fromCharCode(...head.subarray(0, 4)) === 'RIFF' && String.fromCharCode(...head.subarray(8, 12)) === 'WEBP') return 'image/webp';
  if (String.fromCharCode(...head.subarray(0, 3)) === 'GIF') return 'image/gif';
  return 'application/octet-stream';
}
