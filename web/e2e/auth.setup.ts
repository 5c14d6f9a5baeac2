import { test as setup, expect } from '@playwright/test';
import { API_KEY } from './fixtures';

// Signs in once through the sign-in page; the session cookie is reused by every test.
setup('sign in with an API key', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await page.getByLabel('API key').fill(API_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible();
  // The key is not kept anywhere scripts can read it.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  expect(stored).not.toContain(API_KEY);
  await page.context().storageState({ path: 'e2e/.auth/state.json' });
});
