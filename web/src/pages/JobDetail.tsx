// Placeholder: branch h/web-pages replaces this page.
export function JobDetailPage({ id }: { id: string }) {
  return <h1>Job {id}</h1>;
}
