import fs from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { categoryRuleSchema, type CategoryRule } from '../../engine/kinds/twin.js';
import { invalidInput } from '../failures.js';

export interface CompiledRule {
  category: string;
  supercategory?: string;
  mainCategories?: Set<string>;
  title?: RegExp;
}

/** The category table from inline rules or a YAML/JSON file; bad tables fail the stage without retry. */
export async function loadCategoryRules(rules: CategoryRule[] | string): Promise<CompiledRule[]> {
  let table: unknown = rules;
  if (typeof rules === 'string') {
    const text = await fs.readFile(rules, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw invalid(`cannot read the category table ${rules}: ${err.code ?? err.message}`);
    });
    table = parseYaml(text);
  }
  const parsed = z.array(categoryRuleSchema).min(1).safeParse(table);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(`category table${typeof rules === 'string' ? ` ${rules}` : ''}: rule ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data.map((rule, i) => {
    let title: RegExp | undefined;
    try {
      title = rule.title === undefined ? undefined : new RegExp(rule.title, 'i');
    } catch (err) {
      throw invalid(`category rule ${i} (${rule.category}): bad title pattern: ${(err as Error).message}`);
    }
    const mains = rule.main_category === undefined ? undefined : [rule.main_category].flat().map((m) => m.toLowerCase());
    return { category: rule.category, supercategory: rule.supercategory, mainCategories: mains && new Set(mains), title };
  });
}

/** The first rule a listing matches; a rule with both conditions needs both. */
export function categorize(rules: CompiledRule[], mainCategory: unknown, title: string): CompiledRule | undefined {
  const main = typeof mainCategory === 'string' ? mainCategory.toLowerCase() : '';
  return rules.find((r) => (!r.mainCategories || r.mainCategories.has(main)) && (!r.title || r.title.test(title)));
}

function invalid(message: string): ApplicationFailure {
  return invalidInput(message);
}
