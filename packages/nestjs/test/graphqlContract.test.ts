import 'reflect-metadata';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Module } from '@nestjs/common';
import { Args, GraphQLModule, Mutation, Query, Resolver } from '@nestjs/graphql';
import { GRAPHQL_CONTRACT_TYPEDEFS, type GraphqlContractInput, runGraphqlContract } from '@quiesce/testkit';
import { AllowDuringReadOnly, DropDuringReadOnly, QueueDuringReadOnly } from '../src/policyDecorators.js';
import { QuiesceModule } from '../src/quiesceModule.js';
import { ReadOnlyGuard } from '../src/readOnlyGuard.js';
import { PLATFORMS, type Platform, startNestApp } from './testApp.js';
import { YogaTestDriver } from './testGraphqlDriver.js';

// The testkit's GraphQL contract through the Nest guard, with the Apollo driver and a Yoga driver, on both platforms.

function build(platform: Platform, driver: 'apollo' | 'yoga') {
  return async ({ engine, ran, principal }: GraphqlContractInput) => {
    @ReadOnlyGuard()
    @Resolver()
    class ContractResolver {
      @Query('hello')
      hello() {
        ran('hello');
        return 'hello';
      }
      @Mutation('createOrder')
      createOrder(@Args('sku') _sku: string) {
        ran('createOrder');
        return 'createOrder';
      }
      @AllowDuringReadOnly()
      @Mutation('login')
      login(@Args('user') _user: string) {
        ran('login');
        return 'login';
      }
      @DropDuringReadOnly()
      @Mutation('trackView')
      trackView(@Args('page') _page: string) {
        ran('trackView');
        return true;
      }
      @QueueDuringReadOnly({ name: 'placeOrder' })
      @Mutation('placeOrder')
      placeOrder(@Args('item') _item: string) {
        ran('placeOrder');
        return 'placeOrder';
      }
    }
    const graphql =
      driver === 'apollo'
        ? GraphQLModule.forRoot<ApolloDriverConfig>({
            driver: ApolloDriver,
            typeDefs: GRAPHQL_CONTRACT_TYPEDEFS,
            graphiql: false,
            includeStacktraceInErrorResponses: false,
            preserveHttpStatusForExecutionErrors: false,
          })
        : GraphQLModule.forRoot({ driver: YogaTestDriver, typeDefs: GRAPHQL_CONTRACT_TYPEDEFS });
    @Module({
      imports: [QuiesceModule.forRoot({ engine, principal: () => principal() }), graphql],
      providers: [ContractResolver],
    })
    class AppModule {}
    return startNestApp(AppModule, platform);
  };
}

for (const platform of PLATFORMS) {
  runGraphqlContract({ name: `nestjs apollo (${platform})`, build: build(platform, 'apollo') });
  runGraphqlContract({ name: `nestjs yoga driver (${platform})`, build: build(platform, 'yoga') });
}
