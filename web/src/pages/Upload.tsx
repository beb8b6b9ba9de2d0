// Placeholder: branch h/web-pages replaces this page.
export function UploadPage() {
  return <h1>Upload</h1>;
}
