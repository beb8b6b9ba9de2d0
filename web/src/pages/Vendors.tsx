export function VendorsPage() {
  return <h1>Vendors</h1>;
}
