// The @pixq/client methods the dashboard uses that branch h/jobs-api adds (GUIDE contract); removed once merged.
import '@pixq/client';

declare module '@pixq/client' {
  interface PixqClient {
    whoami(): Promise<{ kind: 'vendor'; vendor: { id: string; name: string } } | { kind: 'admin' }>;
  }
}
