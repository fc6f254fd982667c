import { random } from '../index';

describe('random', () => {
  test('PRNGKey(0) and split match JAX threefry', () => {
    expect(Array.from(random.PRNGKey(0))).toEqual([0, 0]);
    const [a, b] = random.split(random.PRNGKey(0));
    // jax.random.split(PRNGKey(0)) == [[4146024105, 967050713], [2718843009, 1272950319]]
    expect(Array.from(a)).toEqual([4146024105, 967050713]);
    expect(Array.from(b)).toEqual([2718843009, 1272950319]);
  });
});
