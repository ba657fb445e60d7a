import 'reflect-metadata';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  Controller,
  Get,
  HttpException,
  Inject,
  Module,
  NotFoundException,
  Param,
  ParseIntPipe,
  Post,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { QuiesceEngine } from '@quiesce/core';
import { DropDuringReadOnly, QuiesceModule, ReadOnlyGuard } from '@quiesce/nestjs';
import express from 'express';
import type { NotesRepository } from './database.js';

const NOTES = Symbol('notes');

/**
 * The NestJS part of the board: pinning and view counts, on its own Express instance that the
 * demo mounts under `/nest`. `@ReadOnlyGuard()` refuses the pin writes during a window; the view
 * counter is non-critical and dropped.
 */
export async function createNestNotes(
  engine: QuiesceEngine,
  notes: NotesRepository,
): Promise<{ handler: (req: IncomingMessage, res: ServerResponse) => void; close(): Promise<void> }> {
  @ReadOnlyGuard()
  @Controller('notes')
  class PinsController {
    constructor(@Inject(NOTES) readonly repo: NotesRepository) {}

    @Get(':id')
    async get(@Param('id', ParseIntPipe) id: number) {
      const note = await this.repo.get(id);
      if (!note) throw new NotFoundException(`note ${id} not found`);
      return note;
    }

    @Post(':id/pin')
    async pin(@Param('id', ParseIntPipe) id: number) {
      return this.#found(id, await this.repo.pin(id, true));
    }

    @Post(':id/unpin')
    async unpin(@Param('id', ParseIntPipe) id: number) {
      return this.#found(id, await this.repo.pin(id, false));
    }

    @DropDuringReadOnly()
    @Post(':id/views')
    async view(@Param('id', ParseIntPipe) id: number) {
      await this.repo.view(id);
      return { ok: true };
    }

    #found<T>(id: number, v: T | null): T {
      if (v === null) throw new HttpException(`note ${id} not found`, 404);
      return v;
    }
  }

  @Module({
    imports: [QuiesceModule.forRoot({ engine, mountPath: '/nest' })],
    controllers: [PinsController],
    providers: [{ provide: NOTES, useValue: notes }],
  })
  class NotesModule {}

  const instance = express();
  const app = await NestFactory.create(NotesModule, new ExpressAdapter(instance), {
    logger: false,
    abortOnError: false,
  });
  await app.init();
  return { handler: instance as never, close: () => app.close() };
}
