/**
 * The population controller's gRPC service (distributed/population_grpc.ts) and the member
 * options of `lopt learner` / `lopt population`: a member's heartbeats keep it alive in the
 * controller's eyes without other calls; a member process that starts again replaces the earlier
 * one, whose calls are refused from then on (a stalled process that wakes up cannot report twice);
 * bad member options are refused before anything is written.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { registry } from '@lopt/core';
import { population } from '@lopt/training';
import { main } from '../cli';
import { PopulationGrpcClient, startPopulationServer } from '../distributed/population_grpc';
import { sink } from './support/sink';

const experiment = { name: 'quadratic-pes', configHash: 'abc' };

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lopt-pop-grpc-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('heartbeats, and a restarted member process replacing the earlier one', async () => {
  const controller = new population.PopulationController([{ lr: 1 }], new population.FixedSchedule({}), { logDir: dir });
  const server = await startPopulationServer(controller, { experiment });
  const a = new PopulationGrpcClient(server.address, { experiment, memberId: 0, heartbeatSeconds: 0.05, retrySeconds: 1 });
  const b = new PopulationGrpcClient(server.address, { experiment, memberId: 0, retrySeconds: 1 });
  try {
    const first = await a.maybeGetWorkerData(0, null, null, null, null);
    expect(first).toMatchObject({ metaParams: { lr: 1 }, step: 0 });
    expect(server.liveness.get(0)?.incarnation).toBe(a.incarnation);
    // heartbeats alone move lastSeen on
    const seen = server.liveness.get(0)!.lastSeen;
    await new Promise((r) => setTimeout(r, 400));
    expect(server.liveness.get(0)!.lastSeen).toBeGreaterThan(seen);
    // a's report is accepted while it is the member's process
    await a.setEval(0, first!.generationId, 2, '/ck/2', 1.5);
    // b starts (no generation): it is the member now, and gets the generation with a's checkpoint
    const again = await b.maybeGetWorkerData(0, null, null, null, null);
    expect(again).toMatchObject({ generationId: first!.generationId, params: '/ck/2', step: 2 });
    expect(server.liveness.get(0)?.incarnation).toBe(b.incarnation);
    await expect(a.setEval(0, first!.generationId, 4, '/ck/4', 1)).rejects.toThrow(/member 0 was replaced by a newer process/);
    await expect(a.maybeGetWorkerData(0, first!.generationId, 4, '/ck/4', { lr: 1 })).rejects.toThrow(/was replaced/);
    await b.setEval(0, first!.generationId, 4, '/ck/4b', 1.25);
    const state = JSON.parse(fs.readFileSync(path.join(dir, population.STATE_FILE), 'utf8'));
    expect(state.cache[first!.generationId]['4'].params).toBe('/ck/4b');
  } finally {
    a.close();
    b.close();
    await server.close();
  }
});

async function run(args: string[]) {
  const stdout = sink();
  const stderr = sink();
  const code = await main(['node', 'lopt', ...args], { registry, stdout, stderr });
  return { code, out: stdout.text(), err: stderr.text() };
}

describe('member options refused before anything is written', () => {
  const pop = ['--set', 'tasks.0.numTasks=1', '--set', 'population.members=2', '--backend', 'cpu'];
  const cases: Array<[string, string[], RegExp]> = [
    ['learner --population without --member-id', ['learner', 'quadratic-pes', ...pop, '--population', '127.0.0.1:1', '--logdir', 'LOGDIR'], /--population and --member-id go together/],
    ['learner --population without --logdir', ['learner', 'quadratic-pes', ...pop, '--population', '127.0.0.1:1', '--member-id', '0'], /--population needs --logdir/],
    ['learner --population --resume', ['learner', 'quadratic-pes', ...pop, '--population', '127.0.0.1:1', '--member-id', '0', '--logdir', 'LOGDIR', '--resume'], /leave out --resume/],
    ['learner --population bad address', ['learner', 'quadratic-pes', ...pop, '--population', 'nowhere', '--member-id', '0', '--logdir', 'LOGDIR'], /--population must be host:port/],
    ['learner --member-id out of range', ['learner', 'quadratic-pes', ...pop, '--population', '127.0.0.1:1', '--member-id', '2', '--logdir', 'LOGDIR'], /--member-id must be one of 0\.\.1, got 2/],
    ['learner value eval without --eval', ['learner', 'quadratic-pes', ...pop, '--set', 'population.value=eval', '--population', '127.0.0.1:1', '--member-id', '0', '--logdir', 'LOGDIR'], /population\.value 'eval'.*add --eval/],
    ['population --spawn-members without --serve', ['population', 'quadratic-pes', ...pop, '--spawn-members', '--logdir', 'LOGDIR'], /--spawn-members and --member-command go with --serve/],
    ['population --member-command without --spawn-members', ['population', 'quadratic-pes', ...pop, '--serve', '--member-command', 'true', '--logdir', 'LOGDIR'], /--member-command needs --spawn-members/],
  ];
  for (const [name, args, re] of cases) {
    test(name, async () => {
      const logdir = path.join(dir, 'never');
      const r = await run(args.map((a) => (a === 'LOGDIR' ? logdir : a)));
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(re);
      expect(fs.existsSync(logdir)).toBe(false);
    });
  }
});
