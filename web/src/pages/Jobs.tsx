// Placeholder: branch h/web-pages replaces this page.
export function JobsPage() {
  return <h1>Jobs</h1>;
}
