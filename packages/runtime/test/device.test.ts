/**
 * `--device` values: the providers' names, and lists of GPUs (one session worker each). A CUDA
 * machine is needed to run on several GPUs; here only the parsing and the refusal of a GPU list
 * for another provider are checked.
 */
import { describe, expect, it } from 'vitest';
import { createSessionPool, parseDevice } from '@geo-dino/runtime';

describe('parseDevice', () => {
  it('accepts the provider names and lists of distinct GPUs', () => {
    expect(parseDevice('auto')).toEqual({ device: 'auto' });
    expect(parseDevice('cpu')).toEqual({ device: 'cpu' });
    expect(parseDevice('cuda')).toEqual({ device: 'cuda' });
    expect(parseDevice('cuda:1')).toEqual({ device: 'cuda', deviceIds: [1] });
    expect(parseDevice('cuda:0,cuda:1, cuda:3')).toEqual({ device: 'cuda', deviceIds: [0, 1, 3] });
  });

  it('refuses anything else with the flag and value named', () => {
    for (const bad of ['gpu', 'cuda:', 'cuda:0,cuda:0', 'cuda:0,cpu', 'cuda:-1', 'webgpu:0']) {
      expect(() => parseDevice(bad)).toThrow(new RegExp(`--device: "${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" is not`));
    }
  });

  it('a GPU list needs the cuda device', async () => {
    await expect(createSessionPool([], { device: 'cpu', deviceIds: [0, 1] })).rejects.toMatchObject({ code: 'E_ARGUMENT' });
  });
});
